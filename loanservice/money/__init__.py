"""Money: payer accounts, the append-only ledger (invoices, credit notes, payments, refunds,
write-offs), the termly invoice run, and balances and aged debt."""
