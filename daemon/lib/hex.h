/*
 * hex -- the value of one hexadecimal digit.
 */
#ifndef SOCIALD_HEX_H
#define SOCIALD_HEX_H

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for anything else (NUL and non-ASCII included). */
int hex_value(int c);

#endif /* SOCIALD_HEX_H */
