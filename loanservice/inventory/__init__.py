"""The instrument inventory: types, instruments, condition, repairs, import and export."""
