/** The e2e VM harness: base image, VMs, private network, the OpenSSH client. */
export type { BaseImage } from "./image";
export { ensureBaseImage, cacheRoot, BASE_PACKAGES, KERNEL_PACKAGE, SUITE } from "./image";
export type { Vm, BootOptions, ExecResult } from "./vm";
export { PrivateNetwork, bootVm, createPrivateNetwork, chooseAccel, freeTcpPort, killAllVms, stopDetachedVm, detachedVmRunning } from "./vm";
export type { SshTarget, RunResult } from "./ssh";
export { sshRun, shq } from "./ssh";
