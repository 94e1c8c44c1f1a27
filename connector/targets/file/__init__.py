"""A vendor fed by a delivered CSV file (Inläsningstjänst): mapping, rendering, delivery."""
