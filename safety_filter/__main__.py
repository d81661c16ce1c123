from safety_filter.cli import main

raise SystemExit(main())
