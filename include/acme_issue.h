/* acme_issue.h placeholder */
