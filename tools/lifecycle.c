/* lifecycle.c — placeholder, being written. */
#include "cli.h"
