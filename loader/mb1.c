/* Multiboot1 kernels: the header (ELF or a.out-kludge addresses), the information block, the start state. */
#include "lib/errno.h"
#include "lib/string.h"
#include "gmem/layout.h"
#include "loader/mb1.h"

/* --- the header (3.1) -------------------------------------------------------------------------- */

/* The first 4-byte aligned place in the first 8 KiB where magic, flags and checksum sum to 0, or -1;
 * *magic_seen tells whether the magic alone was found. */
static long mb1_locate(const uint8_t *f, size_t size, bool *magic_seen)
{
	size_t limit = size < MB1_SEARCH ? size : MB1_SEARCH;

	*magic_seen = false;
	for (size_t at = 0; f && at + MB1_HDR_MAGIC_LEN <= limit; at += 4) {
		uint32_t magic = rd32(f + at), flags = rd32(f + at + 4), sum = rd32(f + at + 8);

		if (magic != MB1_HEADER_MAGIC)
			continue;
		*magic_seen = true;
		if ((uint32_t)(magic + flags + sum) == 0)
			return (long)at;
	}
	return -1;
}

int mb1_header_seen(const void *file, size_t size)
{
	bool magic;

	if (mb1_locate(file, size, &magic) >= 0)
		return 2;
	return magic ? 1 : 0;
}

/*
 * The a.out kludge (3.1.3): the header's own address fields say where the image goes.
 *
 *   file:    [load_off ........ header at hoff ........ load_off + load_len)
 *   memory:  [load_addr ....... header_addr .......... load_end_addr) [bss ... bss_end_addr)
 *
 * load_off = hoff - (header_addr - load_addr); load_end_addr 0 means "to the end of the file",
 * bss_end_addr 0 means "no bss".
 */
static int mb1_kludge(const struct mb1_header *h, uint64_t hoff, size_t size, const struct elf_limits *lim,
		      struct guest_image *img, uint64_t *off, uint64_t *len, char *why, size_t whylen)
{
	uint64_t load_end, mem_end;
	int err;

	if (h->load_addr > h->header_addr) {
		loader_say(why, whylen, "Multiboot load_addr 0x%x is above header_addr 0x%x",
			   h->load_addr, h->header_addr);
		return -ENOEXEC;
	}
	if (h->header_addr - h->load_addr > hoff) {
		loader_say(why, whylen, "Multiboot load_addr 0x%x would start 0x%x bytes before the header, "
			   "which is only at file offset 0x%llx", h->load_addr, h->header_addr - h->load_addr,
			   (unsigned long long)hoff);
		return -ENOEXEC;
	}
	*off = hoff - (h->header_addr - h->load_addr);
	if (h->load_end_addr == 0) {
		*len = size - *off;
	} else {
		if (h->load_end_addr < h->load_addr) {
			loader_say(why, whylen, "Multiboot load_end_addr 0x%x is below load_addr 0x%x",
				   h->load_end_addr, h->load_addr);
			return -ENOEXEC;
		}
		*len = h->load_end_addr - h->load_addr;
		if (!in_file(*off, *len, size)) {
			loader_say(why, whylen, "Multiboot load_end_addr 0x%x asks for 0x%llx bytes from file offset "
				   "0x%llx; the file has 0x%llx", h->load_end_addr, (unsigned long long)*len,
				   (unsigned long long)*off, (unsigned long long)size);
			return -ENOEXEC;
		}
	}
	load_end = (uint64_t)h->load_addr + *len;
	mem_end = load_end;
	if (h->bss_end_addr != 0) {
		if (h->bss_end_addr < load_end) {
			loader_say(why, whylen, "Multiboot bss_end_addr 0x%x is below the loaded end 0x%llx",
				   h->bss_end_addr, (unsigned long long)load_end);
			return -ENOEXEC;
		}
		mem_end = h->bss_end_addr;
	}
	if (mem_end == h->load_addr) {
		loader_say(why, whylen, "Multiboot address fields load nothing");
		return -ENOEXEC;
	}
	if (h->load_addr < lim->reserved_end) {
		loader_say(why, whylen, "Multiboot load_addr 0x%x is below 0x%llx, the lowest address a kernel may "
			   "occupy", h->load_addr, (unsigned long long)lim->reserved_end);
		return -EFAULT;
	}
	err = loader_check_range("image", h->load_addr, mem_end - h->load_addr, lim->ram, why, whylen);
	if (err)
		return err;
	if (h->entry_addr < h->load_addr || h->entry_addr >= mem_end) {
		loader_say(why, whylen, "Multiboot entry_addr 0x%x is outside the image 0x%x-0x%llx",
			   h->entry_addr, h->load_addr, (unsigned long long)mem_end);
		return -EFAULT;
	}
	*img = (struct guest_image){ h->entry_addr, h->load_addr, mem_end, false, 1 };
	return 0;
}

int mb1_check(const void *file, size_t size, const struct elf_limits *lim, struct guest_image *img,
	      struct mb1_kludge *k, char *why, size_t whylen)
{
	const uint8_t *f = file;
	size_t limit = size < MB1_SEARCH ? size : MB1_SEARCH;
	struct mb1_header h = { 0 };
	size_t need = MB1_HDR_MAGIC_LEN;
	bool magic_seen;
	long at = mb1_locate(f, size, &magic_seen);
	struct elf e;
	int err;

	*k = (struct mb1_kludge){ 0 };
	if (at < 0) {
		loader_say(why, whylen, magic_seen ? "Multiboot header checksum is wrong" :
			   "no Multiboot header in the first 8 KiB");
		return -ENOEXEC;
	}
	memcpy(&h, f + at, MB1_HDR_MAGIC_LEN);
	if (h.flags & MB1_HF_AOUT_KLUDGE)
		need = MB1_HDR_ADDR_LEN;
	if (h.flags & MB1_HF_VIDEO)
		need = MB1_HDR_VIDEO_LEN;
	if (need > limit - (size_t)at) {
		loader_say(why, whylen, "Multiboot header (flags 0x%x, %zu bytes) runs past the %s",
			   h.flags, need, limit == size ? "end of the file" : "first 8 KiB");
		return -ENOEXEC;
	}
	memcpy(&h, f + at, need);
	/* 3.1.2: a requirement bit we do not understand or cannot meet means refusing the kernel. */
	if (h.flags & MB1_HF_VIDEO) {
		loader_say(why, whylen, "Multiboot header requires a video mode (flags bit 2); guests have no display");
		return -ENODEV;
	}
	if (h.flags & MB1_HF_REQUIRED & ~(MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO)) {
		loader_say(why, whylen, "Multiboot header requires features we do not know (flags 0x%x)",
			   h.flags & MB1_HF_REQUIRED & ~(MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO | MB1_HF_VIDEO));
		return -ENODEV;
	}
	/* 3.1.3: with flags[16] the address fields win even over an ELF header (as GRUB does). */
	if (h.flags & MB1_HF_AOUT_KLUDGE) {
		k->used = true;
		return mb1_kludge(&h, (uint64_t)at, size, lim, img, &k->off, &k->len, why, whylen);
	}
	if (!elf_is_elf(f, size)) {
		loader_say(why, whylen, "Multiboot image is not ELF and its header has no address fields (flags bit 16)");
		return -ENOEXEC;
	}
	err = elf_parse(f, size, &e, why, whylen);
	if (err)
		return err;
	return elf_place(f, size, &e, lim, NULL, img, why, whylen);
}

/* --- the information block (3.3) --------------------------------------------------------------- */

/* Appends string s at *off (NUL included); its GPA, or 0 if it does not fit. */
static uint32_t put_string(uint8_t *b, size_t size, size_t *off, uint64_t gpa, const char *s)
{
	size_t len = strlen(s) + 1;
	uint32_t at;

	if (*off > size || len > size - *off)
		return 0;
	memcpy(b + *off, s, len);
	at = (uint32_t)(gpa + *off);
	*off += len;
	return at;
}

/*
 * Layout, from gpa:
 *   +0    struct mb1_info (116 bytes), padding to 120
 *   +120  memory map: n x 24-byte entries (size 20 | base | length | type)
 *         module list: nmods x 16 bytes
 *         strings: command line, boot loader name, module strings, each NUL-terminated
 */
size_t mb1_build_info(void *buf, size_t bufsize, uint64_t gpa, const char *cmdline, const char *loader_name,
		      uint64_t ram, const struct loader_module *mods, unsigned nmods)
{
	uint8_t *b = buf;
	struct loader_region map[LOADER_MAP_MAX];
	struct mb1_info info = { 0 };
	size_t off = 120, mods_off;
	unsigned n;
	uint64_t upper_kib;

	if (!b || gpa > UINT32_MAX || bufsize > UINT32_MAX - gpa)
		return 0;   /* every pointer in the block is 32-bit */
	n = loader_memory_map(ram, map);
	if (bufsize < off + n * sizeof(struct mb1_mmap_entry) + (size_t)nmods * sizeof(struct mb1_module))
		return 0;
	memset(b, 0, off);

	/* mem_lower at most 640 KiB: 639 keeps the EBDA out, as the map does; mem_upper from 1 MiB to
	 * "the first upper memory hole" (Multiboot 0.6.96, 3.3): the hole below 4 GiB, or RAM's end. */
	upper_kib = gmem_low_end(ram) > LOADER_HIGH_BASE ? (gmem_low_end(ram) - LOADER_HIGH_BASE) / 1024 : 0;
	info.flags = MB1_INFO_MEMORY | MB1_INFO_CMDLINE | MB1_INFO_MEM_MAP | MB1_INFO_LOADER_NAME;
	info.mem_lower = (uint32_t)(min64(ram, LOADER_LOW_END) / 1024);
	info.mem_upper = (uint32_t)min64(upper_kib, UINT32_MAX);

	info.mmap_addr = (uint32_t)(gpa + off);
	info.mmap_length = n * sizeof(struct mb1_mmap_entry);
	for (unsigned i = 0; i < n; i++) {
		struct mb1_mmap_entry m = { sizeof(m) - sizeof(m.size), (uint32_t)map[i].base,
					    (uint32_t)(map[i].base >> 32), (uint32_t)map[i].len,
					    (uint32_t)(map[i].len >> 32), map[i].type };

		memcpy(b + off, &m, sizeof(m));
		off += sizeof(m);
	}

	mods_off = off;
	off += (size_t)nmods * sizeof(struct mb1_module);
	if (nmods) {
		info.flags |= MB1_INFO_MODS;
		info.mods_count = nmods;
		info.mods_addr = (uint32_t)(gpa + mods_off);
	}

	info.cmdline = put_string(b, bufsize, &off, gpa, cmdline ? cmdline : "");
	info.boot_loader_name = put_string(b, bufsize, &off, gpa, loader_name ? loader_name : "");
	if (!info.cmdline || !info.boot_loader_name)
		return 0;
	for (unsigned i = 0; i < nmods; i++) {
		struct mb1_module m = { (uint32_t)mods[i].start, (uint32_t)mods[i].end, 0, 0 };

		m.string = put_string(b, bufsize, &off, gpa, mods[i].cmdline);
		if (!m.string)
			return 0;
		memcpy(b + mods_off + i * sizeof(m), &m, sizeof(m));
	}
	memcpy(b, &info, sizeof(info));
	return off;
}

void mb1_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa)
{
	loader_mb_start_state(s, entry, MB1_BOOTLOADER_MAGIC, info_gpa);
}

/* --- loader_load_guest for Multiboot1 ---------------------------------------------------------- */

/* Builds and writes the block; apart so its 4 KiB frame is not stacked on the caller's. */
__attribute__((noinline))
static int mb1_write_info(uint64_t gpa, const char *cmdline, uint64_t ram, const struct loader_module *mods,
			  unsigned nmods, loader_write_fn write, void *ctx, char *why, size_t whylen)
{
	uint8_t info[LOADER_INFO_MAX];
	size_t n = mb1_build_info(info, sizeof(info), gpa, cmdline, LOADER_NAME, ram, mods, nmods);

	if (!n) {
		loader_say(why, whylen, "the Multiboot information (command line, %u module%s) does not fit in "
			   "%u bytes", nmods, nmods == 1 ? "" : "s", (unsigned)LOADER_INFO_MAX);
		return -EINVAL;
	}
	return loader_put(write, ctx, gpa, info, n, why, whylen);
}

int mb1_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		   const struct loader_file *extra, unsigned nextra,
		   loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen)
{
	struct elf_limits lim = { ram, LOADER_IMAGE_MIN, true };
	struct loader_module mods[LOADER_MAX_FILES];
	struct guest_image img;
	struct mb1_kludge k;
	uint64_t info;
	int err;

	err = mb1_check(file, size, &lim, &img, &k, why, whylen);
	if (err)
		return err;
	/* Modules above the image (its bss included), page aligned whether flags[0] asks or not. */
	err = loader_place_modules(extra, nextra, img.hi, ram, mods, why, whylen);
	if (err)
		return err;
	/* Where the image and modules are not (a kernel linked at 0x8000 for `qemu -kernel` has its
	 * segment where the block usually goes). */
	info = loader_place_info(img.lo, img.hi, mods, nextra, ram, why, whylen);
	if (!info)
		return -EFAULT;
	/* The block is built (and its size checked) before anything is written. */
	err = mb1_write_info(info, cmdline, ram, mods, nextra, NULL, NULL, why, whylen);
	if (err || !write)
		goto done;
	if (k.used) {
		err = k.len ? loader_put(write, ctx, img.lo, (const uint8_t *)file + k.off, k.len, why, whylen) : 0;
	} else if (!elf_is_elf(file, size) || (err = elf_load(file, size, write, ctx))) {
		loader_say(why, whylen, "cannot write the kernel's segments to guest memory (error %d)", err);
		err = err ? err : -ENOEXEC;
	}
	for (unsigned i = 0; !err && i < nextra; i++)
		err = loader_put(write, ctx, mods[i].start, extra[i].data, extra[i].size, why, whylen);
	if (!err)
		err = mb1_write_info(info, cmdline, ram, mods, nextra, write, ctx, why, whylen);
done:
	if (err)
		return err;
	mb1_start_state(start, img.entry, info);
	loader_say(why, whylen, "Multiboot1 %s, entry 0x%llx, %u module%s, information at 0x%llx",
		   k.used ? "a.out-kludge image" : img.elf64 ? "ELF64" : "ELF32", (unsigned long long)img.entry,
		   nextra, nextra == 1 ? "" : "s", (unsigned long long)info);
	return 0;
}
