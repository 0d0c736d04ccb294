"""What every app of the platform shares: the long-job lifecycle, roles and permissions, the
one root-confinement check, and the URL and view helpers. Apps import `core`; `core` imports
no app."""
