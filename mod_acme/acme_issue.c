/* acme_issue.c - placeholder until written. */
