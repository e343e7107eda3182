/* The guest loader moved to loader/ (one file per boot protocol); this name stays for core/guest.c
 * until it calls loader_load_guest. */
#pragma once
#include "loader/loader.h"
#include "loader/mb2.h"
