"""cpsim: a Client Portal Gateway simulator."""
