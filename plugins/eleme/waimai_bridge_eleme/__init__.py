"""waimai-bridge plugin for the Eleme (饿了么) shop open platform."""
