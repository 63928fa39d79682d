"""The demo call: rules, banner and the scenario ``callguard demo`` plays."""
