/* Error codes: functions return 0 or one of these, negated. */
#pragma once

#define ENOMEM  12 /* out of memory */
#define EINVAL  22 /* malformed input */
#define ERANGE  34 /* value out of range */
#define ENOENT   2 /* no such thing */
#define EEXIST  17 /* already exists */
#define ENOSPC  28 /* no room left */
#define ENODEV  19 /* no such device or feature */
#define EBUSY   16 /* in use */
#define ENOEXEC  8 /* not an executable we can load */
#define EFAULT  14 /* address outside what is allowed */
#define EIO      5 /* the hardware did not do what was asked */
