"""Reports for the hub's manager and its funders: the dashboard, the Arts Council data return and the
capital-grant asset register, their exports, and the snapshots of what was given to a funder."""
