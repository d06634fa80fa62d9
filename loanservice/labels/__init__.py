"""QR labels for instruments: label stocks, the PDF renderer, printing and scanning."""
