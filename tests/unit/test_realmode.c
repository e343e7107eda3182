/* Host unit tests of vmx/rmemu.c, the real-mode emulator's pure part: the instructions virtual-8086
 * mode refuses, as GNU as 2.40 assembled them in .code16 (operation, length, operand size, the memory
 * operand's segment and offset from 16- and 32-bit addressing), what it must refuse, truncated and
 * random bytes (under ASan: nothing read past n), and the real-mode interrupt frame. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vcpu/seg.h"
#include "vmx/rmemu.h"
#include "tests/unit/unit.h"

/* RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI: upper halves set, so 16-bit addressing must drop them. */
static const uint64_t gpr[8] = { 0x11110001, 0x22220002, 0x33330003, 0x44440004,
				 0x5555fff0, 0x66660100, 0x77770010, 0x88880020 };

struct rcase {
	const char *text;
	unsigned len;
	uint8_t bytes[15];
	enum rm_op op;
	bool o32, mem;
	unsigned seg;
	uint32_t off;
	unsigned cr, gpr;
};

static const struct rcase cases[] = {
	{ "lgdtl 0x10", 6, { 0x66, 0x0f, 0x01, 0x16, 0x10, 0x00 }, RM_LGDT, true, true, VCPU_DS, 0x10, 0, 0 },
	{ "lidtl (%bx,%si)", 4, { 0x66, 0x0f, 0x01, 0x18 }, RM_LIDT, true, true, VCPU_DS, 0x14, 0, 0 },
	{ "lgdt 4(%bp,%di)", 4, { 0x0f, 0x01, 0x53, 0x04 }, RM_LGDT, false, true, VCPU_SS, 0x124, 0, 0 },
	{ "lgdtw %es:0x1234(%bx)", 6, { 0x26, 0x0f, 0x01, 0x97, 0x34, 0x12 }, RM_LGDT, false, true, VCPU_ES, 0x1238, 0, 0 },
	{ "addr32 lgdtl 8(%eax,%ecx,4)", 7, { 0x67, 0x66, 0x0f, 0x01, 0x54, 0x88, 0x08 }, RM_LGDT, true, true, VCPU_DS,
	  0x99990011, 0, 0 },
	{ "addr32 lidt (%esp)", 5, { 0x67, 0x0f, 0x01, 0x1c, 0x24 }, RM_LIDT, false, true, VCPU_SS, 0x5555fff0, 0, 0 },
	{ "addr32 lidt 0x12345678", 8, { 0x67, 0x0f, 0x01, 0x1d, 0x78, 0x56, 0x34, 0x12 }, RM_LIDT, false, true, VCPU_DS,
	  0x12345678, 0, 0 },
	{ "addr32 lgdt 0x100(,%edx,2)", 9, { 0x67, 0x0f, 0x01, 0x14, 0x55, 0x00, 0x01, 0x00, 0x00 }, RM_LGDT, false, true,
	  VCPU_DS, 0x66660106, 0, 0 },
	{ "addr32 lgdt -4(%ebp)", 5, { 0x67, 0x0f, 0x01, 0x55, 0xfc }, RM_LGDT, false, true, VCPU_SS, 0x666600fc, 0, 0 },
	{ "lidt -2(%bp)", 4, { 0x0f, 0x01, 0x5e, 0xfe }, RM_LIDT, false, true, VCPU_SS, 0xfe, 0, 0 },
	{ "lmsw %ax", 3, { 0x0f, 0x01, 0xf0 }, RM_LMSW, false, false, 0, 0, 0, 0 },
	{ "lmsw (%di)", 3, { 0x0f, 0x01, 0x35 }, RM_LMSW, false, true, VCPU_DS, 0x20, 0, 0 },
	{ "mov %cr0,%eax", 3, { 0x0f, 0x20, 0xc0 }, RM_MOV_FROM_CR, false, false, 0, 0, 0, 0 },
	{ "mov %eax,%cr0", 3, { 0x0f, 0x22, 0xc0 }, RM_MOV_TO_CR, false, false, 0, 0, 0, 0 },
	{ "mov %cr4,%ebx", 3, { 0x0f, 0x20, 0xe3 }, RM_MOV_FROM_CR, false, false, 0, 0, 4, 3 },
	{ "mov %esi,%cr3", 3, { 0x0f, 0x22, 0xde }, RM_MOV_TO_CR, false, false, 0, 0, 3, 6 },
	{ "mov %dr7,%eax", 3, { 0x0f, 0x21, 0xf8 }, RM_MOV_FROM_DR, false, false, 0, 0, 7, 0 },
	{ "mov %ecx,%dr0", 3, { 0x0f, 0x23, 0xc1 }, RM_MOV_TO_DR, false, false, 0, 0, 0, 1 },
	/* by hand: MOV DR ignores mod (SDM Vol. 2B): mod 0 is still a register */
	{ "mov %dr6,%edi", 3, { 0x0f, 0x21, 0x37 }, RM_MOV_FROM_DR, false, false, 0, 0, 6, 7 },
	{ "invlpg (%bx)", 3, { 0x0f, 0x01, 0x3f }, RM_INVLPG, false, true, VCPU_DS, 0x4, 0, 0 },
	{ "invlpg %es:2(%bp)", 5, { 0x26, 0x0f, 0x01, 0x7e, 0x02 }, RM_INVLPG, false, true, VCPU_ES, 0x102, 0, 0 },
	{ "clts", 2, { 0x0f, 0x06 }, RM_CLTS, false, false, 0, 0, 0, 0 },
	{ "invd", 2, { 0x0f, 0x08 }, RM_INVD, false, false, 0, 0, 0, 0 },
	{ "wbinvd", 2, { 0x0f, 0x09 }, RM_WBINVD, false, false, 0, 0, 0, 0 },
	{ "wrmsr", 2, { 0x0f, 0x30 }, RM_WRMSR, false, false, 0, 0, 0, 0 },
	{ "rdmsr", 2, { 0x0f, 0x32 }, RM_RDMSR, false, false, 0, 0, 0, 0 },
	{ "hlt", 1, { 0xf4 }, RM_HLT, false, false, 0, 0, 0, 0 },
	{ "repz hlt", 2, { 0xf3, 0xf4 }, RM_HLT, false, false, 0, 0, 0, 0 },
	{ "lgdtw %ss:(%bx)", 4, { 0x36, 0x0f, 0x01, 0x17 }, RM_LGDT, false, true, VCPU_SS, 0x4, 0, 0 },
	{ "lidtw 0x1234(%bp)", 5, { 0x0f, 0x01, 0x9e, 0x34, 0x12 }, RM_LIDT, false, true, VCPU_SS, 0x1334, 0, 0 },
	/* by hand: BX + SI + disp16 wraps at 64 KiB in 16-bit addressing (SDM Vol. 3A, 20.1.1) */
	{ "lgdt 0xfffe(%bx,%si)", 5, { 0x0f, 0x01, 0x90, 0xfe, 0xff }, RM_LGDT, false, true, VCPU_DS, 0x12, 0, 0 },
	/* Linux's trampoline_64.S: lidtl tr_idt, lgdtl tr_gdt (DS = CS) */
	{ "lidtl 0x100", 6, { 0x66, 0x0f, 0x01, 0x1e, 0x00, 0x01 }, RM_LIDT, true, true, VCPU_DS, 0x100, 0, 0 },
};

static void test_assembled(void)
{
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct rm_insn d;
		uint8_t buf[15];

		memset(buf, 0x90, sizeof(buf));          /* NOPs after it: the length must not take them */
		memcpy(buf, c->bytes, c->len);
		if (rm_decode(buf, sizeof(buf), gpr, &d)) {
			fprintf(stderr, "    refused: %s\n", c->text);
			CHECK(0);
			continue;
		}
		CHECK_EQ(d.op, c->op);
		CHECK_EQ(d.len, c->len);
		CHECK_EQ(d.mem, c->mem);
		if (c->op == RM_LGDT || c->op == RM_LIDT)
			CHECK_EQ(d.o32, c->o32);
		if (c->mem) {
			CHECK_EQ(d.seg, c->seg);
			CHECK_EQ(d.off, c->off);
		}
		if (c->op == RM_MOV_FROM_CR || c->op == RM_MOV_TO_CR || c->op == RM_MOV_FROM_DR || c->op == RM_MOV_TO_DR) {
			CHECK_EQ(d.cr, c->cr);
			CHECK_EQ(d.gpr, c->gpr);
		}
		/* Cut short anywhere, it is refused, and nothing past n is read (ASan on the heap copy). */
		for (unsigned n = 0; n < c->len; n++) {
			uint8_t *p = malloc(n ? n : 1);

			memcpy(p, c->bytes, n);
			CHECK(rm_decode(p, n, gpr, &d) != 0);
			free(p);
		}
	}
}

/* Not ours: vm86 mode either runs them or raises what real mode raises too. */
static void test_refused(void)
{
	static const struct { unsigned len; uint8_t b[6]; } no[] = {
		{ 3, { 0x0f, 0x01, 0xd0 } },             /* XGETBV (0F 01 /2 with mod = 3) */
		{ 5, { 0x0f, 0x01, 0x06, 0x00, 0x10 } }, /* SGDT [0x1000]: not privileged */
		{ 3, { 0x0f, 0x01, 0xe0 } },             /* SMSW %ax: not privileged, reads the shadow */
		{ 2, { 0x8b, 0x07 } },                   /* MOV (%bx),%ax */
		{ 3, { 0x0f, 0x00, 0xd8 } },             /* LTR %ax: #UD in real mode as in vm86 mode */
		{ 4, { 0xf0, 0x0f, 0x20, 0xc0 } },       /* LOCK MOV from CR0 (AMD's CR8): #UD here */
		{ 2, { 0x0f, 0x33 } },                   /* RDPMC: not emulated (realmode.c stops the guest) */
		{ 3, { 0x0f, 0x01, 0xf9 } },             /* RDTSCP (0F 01 /7 with mod = 3): not INVLPG */
		{ 2, { 0xcd, 0x10 } },                   /* INT 10h: the redirection bitmap's */
	};
	struct rm_insn d;

	for (unsigned i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(rm_decode(no[i].b, no[i].len, gpr, &d) != 0);
	CHECK(rm_decode((const uint8_t *)"\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\xf4", 16, gpr,
			&d) != 0);               /* 16 bytes: longer than 15 (SDM Vol. 2A, 2.3.11) */
}

static void test_random(void)
{
	struct rm_insn d;

	srand(16);
	for (unsigned i = 0; i < 200000; i++) {
		unsigned n = (unsigned)rand() % 16;
		uint8_t *p = malloc(n ? n : 1);

		for (unsigned j = 0; j < n; j++)
			p[j] = (uint8_t)(j < 2 && rand() % 2 ? (j ? 0x01 : 0x0f) : rand());
		if (rm_decode(p, n, gpr, &d) == 0)
			CHECK(d.len >= 1 && d.len <= n && d.len <= 15);
		free(p);
	}
}

/* INT n in real mode (SDM Vol. 2A, INT n, REAL-ADDRESS-MODE): FLAGS, CS, IP pushed, CS:IP from the
 * IVT entry, IF, TF and AC cleared, everything else kept. */
static void test_frame(void)
{
	struct rm_frame f;
	uint64_t flags = 0x40000 | 0x3000 | 0x0200 | 0x0100 | 0x0046;   /* AC, IOPL, IF, TF, ZF, PF */

	rm_int_frame(0xf000e987u, 0x1000, flags, 0x0700, 0x0012, &f);
	CHECK_EQ(f.sp, 0x0ffa);
	CHECK_EQ(f.at[0], 0x0ffa);
	CHECK_EQ(f.at[1], 0x0ffc);
	CHECK_EQ(f.at[2], 0x0ffe);
	CHECK_EQ(f.word[0], 0x0012);
	CHECK_EQ(f.word[1], 0x0700);
	CHECK_EQ(f.word[2], 0x3346);                 /* the 16-bit FLAGS as they were */
	CHECK_EQ(f.cs, 0xf000);
	CHECK_EQ(f.ip, 0xe987);
	CHECK_EQ(f.rflags, 0x3046);
	/* SP wraps in the 64 KiB stack segment */
	rm_int_frame(0, 0x0000, 0x2, 0, 0, &f);
	CHECK_EQ(f.sp, 0xfffa);
	CHECK_EQ(f.at[2], 0xfffe);
	rm_int_frame(0, 0x0002, 0x2, 0, 0, &f);
	CHECK_EQ(f.at[2], 0x0000);
	CHECK_EQ(f.at[1], 0xfffe);
	CHECK_EQ(f.at[0], 0xfffc);
	CHECK_EQ(f.sp, 0xfffc);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_assembled);
	RUN(test_refused);
	RUN(test_random);
	RUN(test_frame);
	return unit_report(argv[0]);
}
