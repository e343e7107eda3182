/* libFuzzer harness of vcpu/decode.c: the bytes a guest left at its RIP when it touched MMIO, decoded in
 * each of the four CPU modes. The input is exactly the n bytes the decoder is given (libFuzzer's copy
 * ends at n, so ASan sees any read past it); the documented results are checked, not just survival. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "vcpu/decode.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum cpu_mode modes[] = { MODE_REAL, MODE_PROT16, MODE_PROT32, MODE_LONG64 };
	unsigned n = size > 64 ? 64 : (unsigned)size;   /* the exit handler fetches at most 15 */

	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct mmio_insn in;

		if (decode_mmio(data, n, modes[i], &in) != 0)
			continue;
		/* decode.h: a decoded instruction lies inside bytes[0..n) and is at most 15 bytes; the access
		 * is 1/2/4/8 bytes; the register is -1 (immediate) or 0..15, high8 only for RAX..RBX. */
		FUZZ_ASSERT(in.len >= 1 && in.len <= n && in.len <= DECODE_MAX_LEN);
		FUZZ_ASSERT(in.size == 1 || in.size == 2 || in.size == 4 || in.size == 8);
		FUZZ_ASSERT(in.reg >= -1 && in.reg <= 15);
		FUZZ_ASSERT(!in.high8 || (in.reg >= 0 && in.reg <= 3 && in.size == 1));
		FUZZ_ASSERT(modes[i] == MODE_LONG64 || in.reg <= 7);
		FUZZ_ASSERT(in.size != 8 || modes[i] == MODE_LONG64);
		FUZZ_ASSERT(in.reg >= 0 || in.write);          /* an immediate is only ever stored */
		FUZZ_ASSERT(!in.xchg || (in.write && in.reg >= 0));
		FUZZ_ASSERT(in.dst_size == 0 || in.dst_size == 1 || in.dst_size == 2 || in.dst_size == 4 ||
			    in.dst_size == 8);
		/* A shorter buffer holding the same instruction decodes the same way (no peeking past len). */
		{
			struct mmio_insn again;
			uint8_t *copy = malloc(in.len);

			FUZZ_ASSERT(copy);
			for (unsigned k = 0; k < in.len; k++)
				copy[k] = data[k];
			FUZZ_ASSERT(decode_mmio(copy, in.len, modes[i], &again) == 0);
			FUZZ_ASSERT(again.len == in.len && again.size == in.size && again.reg == in.reg &&
				    again.write == in.write && again.imm == in.imm);
			free(copy);
		}
	}
	return 0;
}
