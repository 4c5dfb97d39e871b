"""Identity logic by subject: tenants, sign-in, members, groups, sharing, invitations, API keys, audit."""
