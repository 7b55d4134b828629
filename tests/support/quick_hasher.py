"""PBKDF2 with one iteration, for tests: the same algorithm name and format as Django's, so every
Buzón process a test starts verifies these hashes (the iterations travel in the hash), at none of the
cost (a test world of seven people took 3 s to create at Django's 870,000 iterations)."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
