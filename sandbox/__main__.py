from sandbox.tools.cli import main

raise SystemExit(main())
