/* acme_account.c - placeholder until written. */
