/* store_util.h - being split out of test_store.c */
