//! Windows catalog files (`.cat`): a signed PKCS#7 certificate trust list of member hashes.
