from tsgen.cli import main

raise SystemExit(main())
