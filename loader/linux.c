/* Linux bzImage kernels: setup header checks, boot_params, command line, initrd, the 32-bit entry. */
#include "lib/errno.h"
#include "lib/string.h"
#include "gmem/layout.h"
#include "loader/common.h"
#include "loader/linux.h"

/*
 * What the loader puts where (loader.h has the whole low memory map):
 *
 *   0x5000  GDT: null, null, __BOOT_CS 0x10, __BOOT_DS 0x18
 *   0x6000  the command line, NUL-terminated
 *   0x7000  boot_params: zero, the image's setup header copied to 0x1f1..end, the fields below, e820
 *   1 MiB   the protected-mode kernel: the file's bytes from (setup_sects + 1) * 512 to its end, at
 *           most syssize * 16 of them (bz_parse)
 *   high    the initrd, page aligned, ending as high as min(RAM, initrd_addr_max + 1, 4 GiB) allows
 *
 * The kernel starts at its 32-bit entry (boot.rst, "32-bit Boot Protocol"), which every bzImage has,
 * 64-bit ones included: this needs no page tables, where the 64-bit entry would need an identity map.
 */

/* What the header says, checked. */
struct bz {
	uint16_t version;
	uint32_t hdr_end;          /* 0x202 + byte 0x201: the setup header is [0x1f1, hdr_end) */
	uint64_t pm_off, pm_size;  /* the protected-mode kernel in the file */
	bool relocatable;
	uint32_t align;            /* kernel_alignment */
	uint64_t pref, init_size;  /* 0 before protocol 2.10 */
	uint64_t run;              /* where it will run (decompress to) */
	uint64_t kernel_end;       /* end of the memory it needs before it reads its memory map */
	uint32_t initrd_max;       /* highest byte an initrd may occupy */
	uint32_t cmdline_max;      /* longest command line, NUL excluded */
	uint16_t xloadflags;
};

bool linux_is_bzimage(const void *file, size_t size)
{
	return file && size >= LINUX_HEADER + 4 && rd32((const uint8_t *)file + LINUX_HEADER) == LINUX_HDRS_MAGIC;
}

/* In this order: the magic numbers, the protocol version, the header's extent, bzImage, the
 * protected-mode kernel's place in the file, its alignment, then where it runs and whether that fits. */
static int bz_parse(const uint8_t *f, size_t size, uint64_t ram, struct bz *bz, char *why, size_t whylen)
{
	unsigned setup_sects;
	uint32_t syssize, need_end;

	memset(bz, 0, sizeof(*bz));
	if (!linux_is_bzimage(f, size)) {
		loader_say(why, whylen, "no Linux setup header (\"HdrS\" at 0x202)");
		return -ENOEXEC;
	}
	if (rd16(f + LINUX_BOOT_FLAG) != LINUX_BOOT_FLAG_MAGIC) {
		loader_say(why, whylen, "Linux boot_flag at 0x1fe is 0x%x, not 0xaa55", rd16(f + LINUX_BOOT_FLAG));
		return -ENOEXEC;
	}
	if (size < LINUX_VERSION + 2) {
		loader_say(why, whylen, "Linux setup header is truncated (the file has %zu bytes)", size);
		return -ENOEXEC;
	}
	bz->version = rd16(f + LINUX_VERSION);
	/* GRUB's `linux` refuses what is older ("version too old for 32-bit boot"); QEMU loads those as
	 * zImages at 0x10000, which we do not do. */
	if (bz->version < LINUX_MIN_VERSION) {
		loader_say(why, whylen, "Linux boot protocol %u.%02u is older than 2.03, the oldest we load",
			   bz->version >> 8, bz->version & 0xff);
		return -ENOEXEC;
	}
	/* boot.rst, "jump": 0xEB and an offset from 0x202 that doubles as the header's length; it must
	 * hold the last field this protocol version has that we read. */
	bz->hdr_end = LINUX_HEADER + f[LINUX_JUMP + 1];
	need_end = bz->version >= 0x020a ? LINUX_INIT_SIZE + 4 :
		   bz->version >= 0x0206 ? LINUX_CMDLINE_SIZE + 4 :
		   bz->version >= 0x0205 ? LINUX_RELOCATABLE + 1 : LINUX_INITRD_ADDR_MAX + 4;
	if (f[LINUX_JUMP] != 0xeb || bz->hdr_end < need_end || bz->hdr_end > LINUX_BP_HDR_END) {
		loader_say(why, whylen, "Linux setup header ends at 0x%x (jump 0x%x 0x%x): protocol %u.%02u needs "
			   "0x%x to 0x%x", bz->hdr_end, f[LINUX_JUMP], f[LINUX_JUMP + 1], bz->version >> 8,
			   bz->version & 0xff, need_end, LINUX_BP_HDR_END);
		return -ENOEXEC;
	}
	if (bz->hdr_end > size) {
		loader_say(why, whylen, "Linux setup header (to 0x%x) runs past the end of the file (%zu bytes)",
			   bz->hdr_end, size);
		return -ENOEXEC;
	}
	/* boot.rst, "Loading The Rest of The Kernel": a bzImage has LOADED_HIGH; a zImage goes to 0x10000,
	 * which we do not do. */
	if (!(f[LINUX_LOADFLAGS] & LINUX_LOADED_HIGH)) {
		loader_say(why, whylen, "Linux image is a zImage (loadflags bit 0 clear); only bzImages load");
		return -ENOEXEC;
	}
	setup_sects = f[LINUX_SETUP_SECTS] ? f[LINUX_SETUP_SECTS] : 4;
	bz->pm_off = (uint64_t)(setup_sects + 1) * 512;
	if (bz->pm_off >= size) {
		loader_say(why, whylen, "Linux file is truncated: its setup code (%u sectors) ends at 0x%llx, the "
			   "file has %zu bytes", setup_sects, (unsigned long long)bz->pm_off, size);
		return -ENOEXEC;
	}
	/*
	 * The protected-mode kernel is what the file has after the setup code, as GRUB's `linux` and
	 * QEMU's -kernel load it (neither reads syssize). syssize counts 16-byte paragraphs, rounded up:
	 * a file that ends fewer than 16 bytes before syssize * 16 is whole (tools/build.c of some
	 * kernels writes it so). One that ends 16 bytes or more short, or a syssize of 0, contradicts
	 * its own header: a cut file whose kernel would die decompressing, refused here. Bytes after
	 * syssize * 16 (a signature) are not loaded. Before 2.04 syssize is 16 bits and "cannot be
	 * trusted" for a bzImage (boot.rst): the file's length alone counts.
	 */
	bz->pm_size = size - bz->pm_off;
	if (bz->version >= 0x0204) {
		uint64_t says;

		syssize = rd32(f + LINUX_SYSSIZE);
		says = (uint64_t)syssize * 16;
		if (syssize == 0) {
			loader_say(why, whylen, "Linux syssize is 0: no protected-mode kernel");
			return -ENOEXEC;
		}
		if (says >= bz->pm_size + 16) {
			loader_say(why, whylen, "Linux file is truncated: syssize says 0x%llx bytes of kernel from offset "
				   "0x%llx, the file has %zu bytes", (unsigned long long)says,
				   (unsigned long long)bz->pm_off, size);
			return -ENOEXEC;
		}
		bz->pm_size = min64(bz->pm_size, says);
	}
	/* relocatable_kernel and kernel_alignment came with 2.05: an older kernel runs where it loads. */
	bz->relocatable = bz->version >= 0x0205 && f[LINUX_RELOCATABLE] != 0;
	bz->align = rd32(f + LINUX_KERNEL_ALIGNMENT);
	if (bz->relocatable && (bz->align == 0 || (bz->align & (bz->align - 1)))) {
		loader_say(why, whylen, "Linux kernel_alignment 0x%x is not a power of two", bz->align);
		return -ENOEXEC;
	}
	if (bz->version >= 0x020a) {
		bz->pref = rd64(f + LINUX_PREF_ADDRESS);
		bz->init_size = rd32(f + LINUX_INIT_SIZE);
	} else {
		/* No init_size: GRUB's estimate of what the decompressed kernel needs (three times the
		 * page-aligned file, "the compression ratio is about 50%"), so the initrd stays above it. */
		bz->init_size = 3 * align_up(bz->pm_size, 4096);
	}
	if (bz->version >= 0x020c)
		bz->xloadflags = rd16(f + LINUX_XLOADFLAGS);
	bz->initrd_max = rd32(f + LINUX_INITRD_ADDR_MAX);
	bz->cmdline_max = bz->version >= 0x0206 ? rd32(f + LINUX_CMDLINE_SIZE) : LINUX_CMDLINE_OLD_MAX;

	/*
	 * Where it runs (boot.rst, init_size): a relocatable kernel at align_up(load address,
	 * kernel_alignment), which its decompressor (compressed/head_64.S, startup_32) raises to
	 * LOAD_PHYSICAL_ADDR = pref_address when lower; any other kernel at pref_address. It needs
	 * init_size bytes from there before it looks at its memory map.
	 */
	if (bz->relocatable)
		bz->run = max64(align_up(LINUX_LOAD_ADDR, bz->align), bz->pref);
	else
		bz->run = bz->pref ? bz->pref : LINUX_LOAD_ADDR;
	if (bz->run < LINUX_LOAD_ADDR) {
		loader_say(why, whylen, "Linux kernel is not relocatable and wants to run at 0x%llx, below 1 MiB",
			   (unsigned long long)bz->run);
		return -EFAULT;
	}
	bz->kernel_end = max64(LINUX_LOAD_ADDR + bz->pm_size,
			       bz->run > UINT64_MAX - bz->init_size ? UINT64_MAX : bz->run + bz->init_size);
	if (bz->kernel_end > gmem_low_end(ram) || bz->kernel_end > (1ull << 32)) {
		loader_say(why, whylen, "Linux kernel needs RAM up to 0x%llx (%s at 0x%llx, init_size 0x%llx), "
			   "more than the guest's 0x%llx bytes%s", (unsigned long long)bz->kernel_end,
			   bz->relocatable ? "runs" : "not relocatable, runs", (unsigned long long)bz->run,
			   (unsigned long long)bz->init_size, (unsigned long long)ram,
			   bz->kernel_end > (1ull << 32) ? " or 4 GiB" : ram > GMEM_HOLE_START ? " below 3 GiB" : "");
		return -EFAULT;
	}
	return 0;
}

/* boot_params for this kernel (zero-page.rst; boot.rst "32-bit Boot Protocol": zero it, copy the setup
 * header, fill in what a loader writes). */
static void bz_boot_params(uint8_t *bp, const uint8_t *f, const struct bz *bz, uint64_t ram, uint64_t initrd,
			   uint64_t initrd_size, uint64_t rsdp_gpa)
{
	struct loader_region map[LOADER_MAP_MAX];
	unsigned n = loader_memory_map(ram, map);

	memset(bp, 0, LINUX_BP_SIZE);
	memcpy(bp + LINUX_SETUP_SECTS, f + LINUX_SETUP_SECTS, bz->hdr_end - LINUX_SETUP_SECTS);
	bp[LINUX_TYPE_OF_LOADER] = 0xff;
	bp[LINUX_LOADFLAGS] |= LINUX_CAN_USE_HEAP;
	wr16(bp + LINUX_HEAP_END_PTR, LINUX_HEAP_END - 0x200);
	wr32(bp + LINUX_CODE32_START, (uint32_t)LINUX_LOAD_ADDR);
	wr32(bp + LINUX_RAMDISK_IMAGE, (uint32_t)initrd);
	wr32(bp + LINUX_RAMDISK_SIZE, (uint32_t)initrd_size);
	wr32(bp + LINUX_CMD_LINE_PTR, (uint32_t)LOADER_CMDLINE_GPA);
	if (bz->version >= 0x0209)
		wr64(bp + LINUX_SETUP_DATA, 0);   /* the loader's field: never the image's pointer */
	wr64(bp + LINUX_BP_ACPI_RSDP_ADDR, rsdp_gpa);
	bp[LINUX_BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + LINUX_BP_E820_TABLE + i * LINUX_E820_ENTRY_SIZE;

		wr64(e, map[i].base);
		wr64(e + 8, map[i].len);
		wr32(e + 16, map[i].type);
	}
}

/* Builds boot_params and writes the GDT, the command line and boot_params; apart so its 4 KiB frame
 * is not stacked on the caller's. */
__attribute__((noinline))
static int bz_write_low(const uint8_t *f, const struct bz *bz, uint64_t ram, const char *cmdline,
			uint64_t initrd, uint64_t initrd_size, uint64_t rsdp_gpa, loader_write_fn write,
			void *ctx, char *why, size_t whylen)
{
	uint8_t bp[LINUX_BP_SIZE];
	uint64_t gdt[4] = { 0, 0, LINUX_GDT_CODE, LINUX_GDT_DATA };
	int err;

	bz_boot_params(bp, f, bz, ram, initrd, initrd_size, rsdp_gpa);
	if ((err = loader_put(write, ctx, LOADER_GDT_GPA, gdt, sizeof(gdt), why, whylen)) ||
	    (err = loader_put(write, ctx, LOADER_CMDLINE_GPA, cmdline, strlen(cmdline) + 1, why, whylen)) ||
	    (err = loader_put(write, ctx, LOADER_ZERO_PAGE_GPA, bp, sizeof(bp), why, whylen)))
		return err;
	return 0;
}

/* boot.rst, "32-bit Boot Protocol": protected mode, paging off, a GDT with flat __BOOT_CS/__BOOT_DS,
 * CS = __BOOT_CS, DS = ES = SS = __BOOT_DS (FS and GS too), interrupts off, ESI = boot_params,
 * EBP = EDI = EBX = 0. TR a busy TSS because VM entry checks it. */
static void linux_start_state(struct vcpu_state *s)
{
	struct seg_state data = { LINUX_BOOT_DS, 0, 0xffffffff, AR_DATA32 };

	memset(s, 0, sizeof(*s));
	s->cs = (struct seg_state){ LINUX_BOOT_CS, 0, 0xffffffff, AR_CODE32 };
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->ldtr = (struct seg_state){ 0, 0, 0, AR_UNUSABLE };
	s->tr = (struct seg_state){ 0, 0, 0xff, AR_TSS32_BUSY };
	s->gdtr_base = LOADER_GDT_GPA;
	s->gdtr_limit = 4 * 8 - 1;
	s->cr0 = 0x11;                 /* PE, ET */
	s->rflags = 0x2;               /* IF = 0 */
	s->rip = LINUX_LOAD_ADDR;
	s->rsi = LOADER_ZERO_PAGE_GPA;
}

int linux_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		     const struct loader_file *extra, unsigned nextra, uint64_t rsdp_gpa,
		     loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen)
{
	const uint8_t *f = file;
	uint64_t initrd = 0, initrd_size = 0, offs[LOADER_MAX_FILES];
	size_t len;
	struct bz bz;
	int err;

	err = bz_parse(f, size, ram, &bz, why, whylen);
	if (err)
		return err;

	/* boot.rst, cmdline_size: "the command line can contain at most cmdline_size characters". */
	if (!cmdline)
		cmdline = "";
	len = strlen(cmdline);
	if (len > bz.cmdline_max || len >= LOADER_CMDLINE_MAX) {
		loader_say(why, whylen, "command line is %zu bytes; the kernel takes at most %u",
			   len, (unsigned)min64(bz.cmdline_max, LOADER_CMDLINE_MAX - 1));
		return -EINVAL;
	}

	/* The initrd: the files one after the other, each 4-byte aligned (as GRUB's `initrd a b`; the
	 * kernel unpacks concatenated cpio archives), placed as high as allowed (boot.rst initrd_addr_max,
	 * "the address of the highest safe byte"), page aligned, above all the kernel needs. */
	for (unsigned i = 0; i < nextra; i++) {
		offs[i] = align_up(initrd_size, 4);
		if (extra[i].size > (1ull << 32) || offs[i] > (1ull << 32))
			initrd_size = UINT64_MAX;
		else
			initrd_size = offs[i] + extra[i].size;
	}
	if (initrd_size) {
		uint64_t top = min64(min64(gmem_low_end(ram), (uint64_t)bz.initrd_max + 1), 1ull << 32);

		if (initrd_size > top || ((top - initrd_size) & ~0xfffull) < bz.kernel_end) {
			loader_say(why, whylen, "initrd (0x%llx bytes) does not fit between the kernel's end 0x%llx "
				   "and 0x%llx (RAM below the hole, initrd_addr_max, 4 GiB)", (unsigned long long)initrd_size,
				   (unsigned long long)bz.kernel_end, (unsigned long long)top);
			return -EFAULT;
		}
		initrd = (top - initrd_size) & ~0xfffull;
	}

	if (write) {
		err = bz_write_low(f, &bz, ram, cmdline, initrd, initrd_size, rsdp_gpa, write, ctx, why, whylen);
		if (!err)
			err = loader_put(write, ctx, LINUX_LOAD_ADDR, f + bz.pm_off, bz.pm_size, why, whylen);
		for (unsigned i = 0; !err && i < nextra; i++)
			if (extra[i].size)
				err = loader_put(write, ctx, initrd + offs[i], extra[i].data, extra[i].size,
						 why, whylen);
		if (err)
			return err;
	}
	linux_start_state(start);
	loader_say(why, whylen, "Linux bzImage, boot protocol %u.%02u%s, kernel 0x%llx bytes at 0x%llx (runs at "
		   "0x%llx, needs to 0x%llx), initrd 0x%llx bytes at 0x%llx", bz.version >> 8, bz.version & 0xff,
		   bz.xloadflags & LINUX_XLF_KERNEL_64 ? ", 64-bit" : "",
		   (unsigned long long)bz.pm_size, LINUX_LOAD_ADDR, (unsigned long long)bz.run,
		   (unsigned long long)bz.kernel_end, (unsigned long long)initrd_size, (unsigned long long)initrd);
	return 0;
}
