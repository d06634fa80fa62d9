"""Documents: loan agreements, delivery notes, receipts and overdue notices, as PDFs kept and sent."""
