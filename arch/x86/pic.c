/* The legacy 8259A interrupt controllers: moved off the exception vectors and masked for good.
 * The firmware leaves their IRQ 0-7 on vectors 8-15, where a timer tick would look like a #DF.
 * Initialization words: Intel 8259A datasheet (ICW1-ICW4, OCW1). */
#include "arch/x86/cpu.h"
#include "arch/x86/pic.h"

void pic_disable(void)
{
	outb(0x20, 0x11);  /* ICW1: initialize, ICW4 follows (master) */
	outb(0xa0, 0x11);  /* ... slave */
	outb(0x21, 0x20);  /* ICW2: master vectors 0x20-0x27 */
	outb(0xa1, 0x28);  /* ICW2: slave vectors 0x28-0x2f */
	outb(0x21, 0x04);  /* ICW3: slave on IRQ 2 */
	outb(0xa1, 0x02);  /* ICW3: slave identity 2 */
	outb(0x21, 0x01);  /* ICW4: 8086 mode */
	outb(0xa1, 0x01);
	outb(0x21, 0xff);  /* OCW1: mask every IRQ */
	outb(0xa1, 0xff);
}
