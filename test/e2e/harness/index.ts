/** The e2e VM harness: base image, VMs, private network, executing Pulumi mocks. */
export type { BaseImage } from "./image";
export { ensureBaseImage, cacheRoot, BASE_PACKAGES, KERNEL_PACKAGE, SUITE } from "./image";
export type { Vm, BootOptions, ExecResult } from "./vm";
export { PrivateNetwork, bootVm, createPrivateNetwork, chooseAccel, freeTcpPort, killAllVms, stopDetachedVm, detachedVmRunning } from "./vm";
export type { ExecutingMocksOptions, RecordedResource, TimelineEntry, ComponentSummary, ResourceHandler, RunProgramOptions } from "./mocks";
export { ExecutingMocks, runProgram, settle, stateKey, unwrapSecrets, isSecretWrapped, secretValue, SECRET_SIG_KEY, SECRET_SIG } from "./mocks";
export type { SshTarget, RunResult } from "./ssh";
export { sshRun, scpTo, shq, isDialError } from "./ssh";
