/* config.c — placeholder, being written. */
#include "tokencert.h"
