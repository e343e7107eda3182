/*
 * Start-up after the entry stub: read the Multiboot2 boot information (command line, memory map),
 * run the guest's main and exit. Also the command-line words, hypervisor detection and hypercalls.
 */
#include "rt.h"
#include "tessera/hypercall.h"

/* Multiboot2 spec 3.2: EAX holds this when the loader hands over. */
#define MB2_BOOT_MAGIC 0x36d76289u
/* Multiboot 0.6.96, 3.2: the same for a Multiboot1 kernel (the guests built with mb1.inc). */
#define MB1_BOOT_MAGIC 0x2badb002u

/* Boot information tags (Multiboot2 spec 3.6): u32 type, u32 size, payload; 8-byte aligned. */
#define MB2_TAG_END     0
#define MB2_TAG_CMDLINE 1 /* zero-terminated string */
#define MB2_TAG_MEMINFO 4 /* u32 mem_lower, mem_upper (KiB), spec 3.6.8 */
#define MB2_TAG_MMAP    6 /* u32 entry_size, u32 entry_version, entries; spec 3.6.8 */
#define MB2_MMAP_AVAILABLE 1

struct mb2_tag {
	uint32_t type, size;
};

struct mb2_mmap_entry {
	uint64_t base, len;
	uint32_t type, reserved;
};
_Static_assert(sizeof(struct mb2_mmap_entry) == 24, "Multiboot2 spec 3.6.8");

#define MIB (1ull << 20)
#define GIB4 (1ull << 32)

struct ram_region ram[RAM_MAX_REGIONS];
int ram_count;
uint64_t mbi_base, mbi_end;
uint32_t boot_magic, boot_info;
const char *cmdline = "";

/* The command line is copied, since guests overwrite the boot information: `cmd` as given, `words`
 * with each space made a NUL so values are C strings in place. */
#define CMDLINE_MAX 512
static char cmd[CMDLINE_MAX], words[CMDLINE_MAX];

int main(void);
void rt_start(uint32_t magic, uint32_t mbi);

/* Adds [base, base+len) clipped to [1 MiB, 4 GiB): below 1 MiB is the loader's and the BIOS's,
 * above 4 GiB is out of reach of 32-bit guests. Kept sorted by base. */
static void ram_add(uint64_t base, uint64_t len)
{
	uint64_t end = base + len;
	if (base < MIB)
		base = MIB;
	if (end > GIB4)
		end = GIB4;
	if (base >= end || ram_count == RAM_MAX_REGIONS)
		return;
	int i = ram_count++;
	while (i > 0 && ram[i - 1].base > base) {
		ram[i] = ram[i - 1];
		i--;
	}
	ram[i] = (struct ram_region){ base, end };
}

uint64_t ram_end(void)
{
	return ram_count ? ram[ram_count - 1].end : 0;
}

/* Copies the command line (at most CMDLINE_MAX - 1 bytes of s[0..max)) and splits it into words. */
static void set_cmdline(const char *s, size_t max)
{
	size_t n = 0;

	while (n < CMDLINE_MAX - 1 && n < max && s[n])
		n++;
	memcpy(cmd, s, n);
	cmd[n] = 0;
	cmdline = cmd;
	memcpy(words, cmd, CMDLINE_MAX);
	for (int i = 0; i < CMDLINE_MAX; i++)
		if (words[i] == ' ' || words[i] == '\t')
			words[i] = 0;
}

/* The Multiboot1 information block (Multiboot 0.6.96, 3.3): u32 flags at 0; mem_lower, mem_upper at
 * 4, 8 (flags[0]); cmdline at 16 (flags[2]); mmap_length, mmap_addr at 44, 48 (flags[6]), whose
 * entries are u32 size, u64 base_addr, u64 length, u32 type, the next one size + 4 bytes on. */
static void parse_mb1(uintptr_t mbi)
{
	const uint32_t *w = (const uint32_t *)mbi;
	uint32_t flags = w[0];

	mbi_base = mbi;
	mbi_end = mbi + 120;      /* the fixed part (3.3); the map, modules and strings lie elsewhere */
	if (flags & (1u << 6)) {
		for (uintptr_t e = w[12]; e + 24 <= (uintptr_t)w[12] + w[11]; e += *(const uint32_t *)e + 4) {
			const uint32_t *m = (const uint32_t *)e;
			if (m[5] == MB2_MMAP_AVAILABLE)   /* type 1: available RAM, as in Multiboot2 */
				ram_add(m[1] | (uint64_t)m[2] << 32, m[3] | (uint64_t)m[4] << 32);
			if (m[0] < 20)
				break;                     /* a broken size would loop */
		}
	} else if (flags & 1) {
		ram_add(MIB, (uint64_t)w[2] << 10);
	}
	set_cmdline(flags & (1u << 2) ? (const char *)(uintptr_t)w[4] : "", CMDLINE_MAX);
}

static void parse_mbi(uintptr_t mbi)
{
	uint32_t upper_kib = 0;
	bool have_mmap = false;

	mbi_base = mbi;
	mbi_end = mbi + *(uint32_t *)mbi; /* u32 total_size, u32 reserved, then tags (spec 3.6.1) */
	for (uintptr_t p = mbi + 8; p + 8 <= mbi_end;) {
		const struct mb2_tag *t = (const struct mb2_tag *)p;
		if (t->type == MB2_TAG_END)
			break;
		if (t->type == MB2_TAG_CMDLINE) {
			set_cmdline((const char *)(t + 1), t->size - 8);
		} else if (t->type == MB2_TAG_MEMINFO) {
			upper_kib = ((const uint32_t *)(t + 1))[1];
		} else if (t->type == MB2_TAG_MMAP) {
			uint32_t esize = ((const uint32_t *)(t + 1))[0];
			have_mmap = true;
			for (uintptr_t e = p + 16; esize && e + esize <= p + t->size; e += esize) {
				const struct mb2_mmap_entry *m = (const struct mb2_mmap_entry *)e;
				if (m->type == MB2_MMAP_AVAILABLE)
					ram_add(m->base, m->len);
			}
		}
		p += align_up(t->size, 8);
	}
	/* Without a memory map, the basic meminfo says how much lies above 1 MiB. */
	if (!have_mmap && upper_kib)
		ram_add(MIB, (uint64_t)upper_kib << 10);
	if (cmdline != cmd)
		set_cmdline("", 0);
}

void rt_start(uint32_t magic, uint32_t mbi)
{
	boot_magic = magic;
	boot_info = mbi;
	if (magic == MB1_BOOT_MAGIC) {
		parse_mb1(mbi);
	} else if (magic == MB2_BOOT_MAGIC) {
		parse_mbi(mbi);
	} else {
		printf("rt: not started by a Multiboot2 or Multiboot loader (eax=0x%x)\n", magic);
		exit(3);
	}
	exit(main());
}

__attribute__((noreturn)) void exit(int code)
{
	outb(HV_PORT_DEBUG_EXIT, (uint8_t)code);
	/* Still here: no debug-exit device. Ask the hypervisor, else stop this CPU for good. */
	if (hv_present())
		__asm__ volatile("vmcall" : : "a"(HC_EXIT), "b"(code) : "memory");
	for (;;)
		__asm__ volatile("cli; hlt");
}

const char *getarg(const char *key)
{
	size_t klen = strlen(key);
	for (int i = 0; i < CMDLINE_MAX; i++) {
		if (words[i] && (i == 0 || !words[i - 1])) { /* the start of a word */
			const char *w = &words[i];
			size_t j = 0;
			while (j < klen && w[j] == key[j])
				j++;
			if (j == klen && w[j] == '=')
				return w + j + 1;
		}
	}
	return NULL;
}

/* Decimal, or hex after 0x; an optional K, M or G suffix multiplies by 2^10, 2^20, 2^30. */
bool parse_num(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		unsigned d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		v = v * base + d;
	}
	switch (*s) {
	case 0: break;
	case 'k': case 'K': v <<= 10, s++; break;
	case 'm': case 'M': v <<= 20, s++; break;
	case 'g': case 'G': v <<= 30, s++; break;
	default: return false;
	}
	if (*s)
		return false;
	*out = v;
	return true;
}

uint64_t getarg_num(const char *key, uint64_t def)
{
	const char *s = getarg(key);
	uint64_t v;
	if (!s)
		return def;
	if (!parse_num(s, &v)) {
		printf("rt: bad number %s=%s\n", key, s);
		exit(3);
	}
	return v;
}

/* CPUID.1:ECX[31] says some hypervisor is there; leaf 0x40000000's signature says it is tessera.
 * Only then is VMCALL safe: on bare hardware it raises #UD, and we have no IDT. */
bool hv_present(void)
{
	static int known = -1;
	if (known < 0) {
		uint32_t r[4];
		cpuid(1, 0, r);
		known = 0;
		if (r[2] & CPUID1_ECX_HYPERVISOR) {
			char sig[12];
			cpuid(HV_CPUID_BASE, 0, r);
			memcpy(sig, &r[1], 4), memcpy(sig + 4, &r[2], 4), memcpy(sig + 8, &r[3], 4);
			known = 1;
			for (int i = 0; i < 12; i++)
				if (sig[i] != HV_CPUID_SIGNATURE[i])
					known = 0;
		}
	}
	return known;
}

long hc_guest_info(struct hv_info *info)
{
	unsigned long a = HC_GUEST_INFO, b = 0, c = 0, d = 0;
	__asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "=d"(d) : : "memory");
	info->id = (uint32_t)b, info->ram_kib = (uint32_t)c, info->cpu = (uint32_t)d;
	return (int32_t)a; /* 0 or a negative error in EAX */
}

long hc_yield(void)
{
	unsigned long a = HC_YIELD, b = 0, c = 0, d = 0;
	__asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "=d"(d) : : "memory");
	return (int32_t)a;
}
