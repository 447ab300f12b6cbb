from scitune.cli import main

raise SystemExit(main())
