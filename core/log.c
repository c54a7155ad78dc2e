/* placeholder while core is being written */
#include "keep.h"
