/** The e2e VM harness: base image, VMs, private network, the OpenSSH client. */
export type { BaseImage } from "./image";
export { BASE_PACKAGES, cacheRoot, ensureBaseImage, KERNEL_PACKAGE, SUITE } from "./image";
export type { RunResult, SshTarget } from "./ssh";
export { shq, sshRun } from "./ssh";
export type { BootOptions, ExecResult, Vm } from "./vm";
export { bootVm, chooseAccel, createPrivateNetwork, detachedVmRunning, freeTcpPort, killAllVms, PrivateNetwork, stopDetachedVm } from "./vm";
