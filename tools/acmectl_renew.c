/* acmectl_renew.c - acmectl renew: not built yet. */
#include "acmectl.h"

int acmectl_renew(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl renew: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
