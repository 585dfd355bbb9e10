/* acme_tokens.h placeholder */
