/* acme_problem.c - placeholder until written. */
