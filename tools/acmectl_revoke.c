/* acmectl_revoke.c - acmectl revoke: not built yet. */
#include "acmectl.h"

int acmectl_revoke(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl revoke: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
