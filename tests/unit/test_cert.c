/* placeholder until written */
#include "unit.h"
static void placeholder(void **state)
{
    (void)state;
    skip();
}
static const struct CMUnitTest tests[] = {UNIT_TEST(placeholder)};
UNIT_MAIN("cert", tests)
