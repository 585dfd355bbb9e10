/* placeholder until split out of test_store.c */
#include "unit.h"
static void placeholder(void **state)
{
    (void)state;
    skip();
}
static const struct CMUnitTest tests[] = {UNIT_TEST(placeholder)};
UNIT_MAIN("store_set", tests)
