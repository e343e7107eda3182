/* The Multiboot2 information layouts moved to loader/multiboot2.h (the loader builds them for guests too);
 * this name stays for core/bootinfo.c and its tests. */
#pragma once
#include "loader/multiboot2.h"
