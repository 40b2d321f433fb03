"""The paper's analyses: energy tables (15)-(17), temporal similarity (18), robustness."""
