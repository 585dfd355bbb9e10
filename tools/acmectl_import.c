/* acmectl_import.c - acmectl import certbot|md [DIR]: not built yet. */
#include "acmectl.h"

int acmectl_import(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl import: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
