/* The SVM back end's first VMRUN: one tiny guest on this CPU, to its first #VMEXIT. */
#pragma once

/*
 * On the calling CPU (CPU 0 at start-up; svm_probe said SVM and NPT are usable): sets EFER.SVME and
 * VM_HSAVE_PA, builds one VMCB and a 2 MiB guest behind a nested page table (gmem, NPT format), runs
 * the guest (real mode: VMMCALL at 0x1000) to its #VMEXIT and prints one informative line,
 * `hv: svm: first VMRUN on cpu 0: #VMEXIT VMMCALL (0x81), guest rip 0x1000[, next rip 0x1003]`.
 * Everything is freed and EFER.SVME cleared afterwards. 0 when the exit was VMMCALL, else -EIO
 * (-ENOMEM without memory).
 */
int svm_first_vmrun(void);
