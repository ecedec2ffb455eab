#include "defer_helpers.h"
TWT_SUITE(task);
TWT_TEST(task, placeholder) { cr_assert(1); }
