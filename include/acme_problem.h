/* acme_problem.h placeholder */
