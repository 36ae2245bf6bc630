"""Access control: who may do what to which entries and attributes.

- `rights` names the privileges (slapd's d, x, c, s, r, a, z) and the
  levels built from them: none < disclose < auth < compare < search < read
  < write, with add and delete as the two halves of write.
- `identity` is who asks: the bound DN (or the proxied one), anonymous or
  root, and how they authenticated.
- `policy` decides the rights of an identity on an entry's attribute (or
  on the `entry` and `children` pseudo-attributes); `view` asks it on an
  operation's behalf, with the root DN above every rule.
"""
