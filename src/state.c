/* state.c — placeholder, being written. */
#include "tokencert.h"
