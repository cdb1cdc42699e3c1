from autoresearch_tui.cli import main

raise SystemExit(main())
