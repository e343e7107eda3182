/* The legacy 8259A PICs: the hypervisor uses the local APIC only. */
#pragma once

void pic_disable(void);
