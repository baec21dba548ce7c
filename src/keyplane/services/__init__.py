"""Use cases: accounts, key issuing, request authorization. Framework-free except for the
SQL repositories they are handed."""
