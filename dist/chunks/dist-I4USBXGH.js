import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a}from"./chunk-FMQCGAKU.js";import"./chunk-UZMZCFOP.js";export default a();
