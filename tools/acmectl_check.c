/* acmectl_check.c - acmectl check: not built yet. */
#include "acmectl.h"

int acmectl_check(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl check: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
