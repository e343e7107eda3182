/* VGA text-mode console: 80x25 cells of (character, attribute) at 0xB8000, scrolled by copying. */
#include <stdint.h>
#include "console/console.h"
#include "lib/string.h"

#define COLS 80
#define ROWS 25
#define ATTR 0x07  /* light grey on black */

static volatile uint16_t *const cells = (volatile uint16_t *)0xb8000;
static int row, col;
static bool on;

void vga_init(void)
{
	for (int i = 0; i < COLS * ROWS; i++)
		cells[i] = ATTR << 8 | ' ';
	row = col = 0;
	on = true;
}

static void newline(void)
{
	col = 0;
	if (++row < ROWS)
		return;
	memmove((void *)cells, (const void *)(cells + COLS), (ROWS - 1) * COLS * 2);
	for (int i = 0; i < COLS; i++)
		cells[(ROWS - 1) * COLS + i] = ATTR << 8 | ' ';
	row = ROWS - 1;
}

void vga_write(const char *s, size_t n)
{
	if (!on)
		return;
	for (; n; n--, s++) {
		if (*s == '\n') {
			newline();
			continue;
		}
		cells[row * COLS + col] = ATTR << 8 | (uint8_t)*s;
		if (++col == COLS)
			newline();
	}
}
